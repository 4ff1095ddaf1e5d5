"""Scenario files: several rocd instances on one machine (processes, network namespaces,
impaired links), steps run in order against their APIs, faults, audio played and
recorded, and a verdict. `rocd scenario run FILE` is the front door; the library of
scenarios lives in scenarios/.
"""

from ._load import ScenarioError, find_tool, load, load_text
from ._model import ACTIONS, PROFILES, LinkSpec, NodeSpec, Scenario, Step
from ._report import EXIT, Report, StepResult
from ._runner import run_scenario, step_label

__all__ = [
    "ACTIONS",
    "EXIT",
    "PROFILES",
    "LinkSpec",
    "NodeSpec",
    "Report",
    "Scenario",
    "ScenarioError",
    "Step",
    "StepResult",
    "find_tool",
    "load",
    "load_text",
    "run_scenario",
    "step_label",
]
