"""The checking library that notebook test cells call, and the feedback it writes."""

from .diagnose import Diagnosis, diagnose
from .exercise import REGISTRY, Exercise, Result, ValueExercise, VJPExercise, check, get, register

__all__ = [
    "REGISTRY",
    "Diagnosis",
    "Exercise",
    "Result",
    "VJPExercise",
    "ValueExercise",
    "check",
    "diagnose",
    "get",
    "register",
]
