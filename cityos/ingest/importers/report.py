"""What an import did: counts, and every rejected row with its number and reason."""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Rejection:
    """One row (CSV line number, GeoJSON feature number or JSON item number) that was not written."""

    row: int
    reason: str
    entity_id: str | None = None


@dataclass
class ImportReport:
    """The outcome of one import, as printed by the CLI and returned by the HTTP API."""

    source: str
    format: str                        # csv / geojson / json
    entity_type: str = ""
    dataset: str | None = None         # the recommended dataset, when the file is one
    encoding: str | None = None
    delimiter: str | None = None
    context: str | None = None         # the @context the attribute names are terms of
    rows: int = 0
    imported: int = 0
    created: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def updated(self) -> int:
        """Entities that existed already and were replaced."""
        return self.imported - self.created

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON (camelCase keys, like the rest of the HTTP API)."""
        body = asdict(self)
        body["entityType"] = body.pop("entity_type")
        body["updated"] = self.updated
        body["rejected"] = [{"row": r.row, "reason": r.reason, "entityId": r.entity_id}
                            for r in self.rejected]
        body["seconds"] = round(self.seconds, 3)
        return body

    def write_rejections(self, path: Path) -> None:
        """The rejected rows as CSV (UTF-8 with BOM, so that Excel shows Japanese correctly)."""
        with path.open("w", encoding="utf-8-sig", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["row", "entity_id", "reason"])
            for rejection in sorted(self.rejected, key=lambda r: r.row):
                writer.writerow([rejection.row, rejection.entity_id or "", rejection.reason])
