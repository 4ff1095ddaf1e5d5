"""A run's results: the verdict table printed at the end, a JSON report (timings, checks,
captured values, the metrics seen) and a JUnit XML file (one test case per step) for CI.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final
from xml.etree import ElementTree as ET

__all__ = ["EXIT", "Report", "StepResult"]

#: Exit statuses of `rocd scenario run` (and the verdict each stands for).
EXIT: Final = {
    "passed": 0,
    "failed": 1,  # an expectation did not hold
    "invalid": 2,  # a bad file or flag
    "error": 3,  # could not set up or carry out a step (not root, a daemon did not start)
    "skipped": 4,  # a tool the scenario requires is missing (the reason is printed)
    "interrupted": 130,  # Ctrl-C / SIGTERM
}


@dataclass
class StepResult:
    index: int
    name: str
    kind: str
    status: str = "not run"  # passed | failed | error | not run
    started_s: float = 0.0  # since the run started
    duration_s: float = 0.0
    message: str = ""
    checks: list[dict[str, Any]] = field(default_factory=list)
    captured: dict[str, Any] = field(default_factory=dict)
    measured: dict[str, Any] = field(default_factory=dict)


@dataclass
class Report:
    scenario: str
    file: str
    description: str
    verdict: str = "error"
    reason: str = ""
    started: float = field(default_factory=time.time)  # Unix time
    setup_s: float = 0.0
    duration_s: float = 0.0
    teardown_s: float = 0.0
    expect_failure: bool = False
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    steps: list[StepResult] = field(default_factory=list)
    metrics: list[dict[str, Any]] = field(default_factory=list)  # what metrics steps read
    #: The last `stream.metrics` event each node saw of each stream (node -> stream -> data).
    stream_metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    links: dict[str, Any] = field(default_factory=dict)
    left_behind: list[str] = field(default_factory=list)
    processes: list[tuple[str, int]] = field(default_factory=list)  # (what, pid) started
    run_dir: str = ""

    @property
    def exit_code(self) -> int:
        return EXIT.get(self.verdict, 3)

    def table(self) -> str:
        """The verdict table: one row per step, then the verdict."""
        rows = [("#", "step", "result", "time", "detail")]
        for step in self.steps:
            detail = step.message or _checks_line(step.checks)
            rows.append(
                (str(step.index + 1), step.name, step.status, f"{step.duration_s:.2f}s", detail)
            )
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = []
        for row in rows:
            cells = [row[i].ljust(widths[i]) for i in range(4)]
            lines.append("  ".join([*cells, _clip(row[4], 100)]).rstrip())
        lines.insert(1, "  ".join("-" * w for w in widths) + "  ------")
        total = self.setup_s + self.duration_s + self.teardown_s
        verdict = self.verdict.upper()
        if self.reason:
            verdict += f": {self.reason}"
        lines.append("")
        lines.append(
            f"{self.scenario}: {verdict} (setup {self.setup_s:.1f} s, "
            f"steps {self.duration_s:.1f} s, teardown {self.teardown_s:.1f} s, "
            f"{total:.1f} s in all)"
        )
        if self.left_behind:
            lines.append("left behind: " + "; ".join(self.left_behind))
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["exit_code"] = self.exit_code
        return out

    def write(self, out_dir: Path) -> tuple[Path, Path]:
        """`<scenario>.json` and `<scenario>.xml` in `out_dir`."""
        out_dir.mkdir(parents=True, exist_ok=True)
        json_path = out_dir / f"{self.scenario}.json"
        json_path.write_text(json.dumps(self.to_json(), indent=2, default=str) + "\n")
        xml_path = out_dir / f"{self.scenario}.xml"
        self.junit().write(xml_path, encoding="utf-8", xml_declaration=True)
        return json_path, xml_path

    def junit(self) -> ET.ElementTree[ET.Element]:
        failures = sum(s.status == "failed" for s in self.steps)
        errors = sum(s.status == "error" for s in self.steps)
        skipped = sum(s.status == "not run" for s in self.steps)
        suite = ET.Element(
            "testsuite",
            name=self.scenario,
            tests=str(len(self.steps)),
            failures=str(failures),
            errors=str(errors),
            skipped=str(skipped),
            time=f"{self.duration_s:.3f}",
            timestamp=time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.started)),
        )
        props = ET.SubElement(suite, "properties")
        ET.SubElement(props, "property", name="verdict", value=self.verdict)
        ET.SubElement(props, "property", name="file", value=self.file)
        for step in self.steps:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"scenario.{self.scenario}",
                name=f"{step.index + 1:02d} {step.name}",
                time=f"{step.duration_s:.3f}",
            )
            if step.status == "failed":
                ET.SubElement(case, "failure", message=step.message).text = _checks_text(step)
            elif step.status == "error":
                ET.SubElement(case, "error", message=step.message).text = step.message
            elif step.status == "not run":
                ET.SubElement(
                    case, "skipped", message=self.reason or "an earlier step did not pass"
                )
            elif step.checks:
                ET.SubElement(case, "system-out").text = _checks_text(step)
        if self.reason and not self.steps:
            case = ET.SubElement(
                suite, "testcase", classname=f"scenario.{self.scenario}", name="setup"
            )
            tag = "skipped" if self.verdict == "skipped" else "error"
            ET.SubElement(case, tag, message=self.reason)
        return ET.ElementTree(suite)


def _checks_line(checks: list[dict[str, Any]]) -> str:
    return "; ".join(
        f"{c['expect']}" + (f" [{c['detail']}]" if c.get("detail") else "") for c in checks
    )


def _checks_text(step: StepResult) -> str:
    return "\n".join(
        f"{'ok  ' if c['ok'] else 'FAIL'} {c['expect']}  {c.get('detail', '')}" for c in step.checks
    )


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
