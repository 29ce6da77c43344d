"""The instructor's report on a batch: what the class got wrong, and whose answers go
wrong alike (``backprop-course report``; :func:`.build.write_report`), and the grades out
to an LMS (``backprop-course export-canvas``; :mod:`.canvas`).

- :mod:`.data`: what is read (grades, diagnoses, probes, answer cells);
- :mod:`.items`: difficulty, discrimination, mistake counts, students to reach out to,
  trends; :mod:`.copying`: pairs of students whose answers behave alike;
- :mod:`.figures`: the plots; :mod:`.page`: the HTML; :mod:`.build`: the files.

Nothing is imported here, so that ``backprop-course --help`` stays quick.
"""
