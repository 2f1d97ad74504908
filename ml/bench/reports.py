"""The benchmark's reports: bench.json, bench.png and bench.md in the output folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ml.bench.markdown import markdown
from ml.bench.plot import plot_png
from ml.core.errors import UserError
from ml.core.files import atomic_write


def write_reports(result: dict[str, Any], output: Path) -> tuple[Path, Path, Path | None]:
    """bench.json, bench.png (when something was measured) and bench.md in `output`."""
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot create folder {output}: {err.strerror or err}") from None
    json_path, md_path, png = output / "bench.json", output / "bench.md", output / "bench.png"
    atomic_write(json_path, json.dumps(result, indent=2, default=str))
    spark = (result.get("spark") or {}).get("runs") or {}
    image = plot_png(
        {int(k): v for k, v in result["runs"].items()}, {int(k): v for k, v in spark.items()}
    )
    if image is None:
        png = None
    else:
        atomic_write(png, image)
    atomic_write(md_path, markdown(result, png))
    return json_path, md_path, png
