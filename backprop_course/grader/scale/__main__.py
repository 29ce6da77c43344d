"""``python -m backprop_course.grader.scale ASSIGNMENT ...``: the sub-command on its own."""

import argparse
import sys

from .cli import add_parser

parser = argparse.ArgumentParser(prog="python -m backprop_course.grader.scale")
add_parser(parser.add_subparsers(dest="command", required=True))
arguments = parser.parse_args(["autograde", *sys.argv[1:]])
sys.exit(arguments.handler(arguments))
