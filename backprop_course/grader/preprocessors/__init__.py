"""nbgrader preprocessors of the course, one per module, named after the class it holds."""
