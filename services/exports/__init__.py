"""A user's data export: one JSON archive of what every service holds about them,
assembled from each service's export part and delivered by a signed, expiring link."""

from services.exports.archive import FORMAT, Section, write_archive
from services.exports.links import ExportLinks, LinkExpired, LinkRefused
from services.exports.service import DataExports, ExportLink

__all__ = [
    "FORMAT",
    "DataExports",
    "ExportLink",
    "ExportLinks",
    "LinkExpired",
    "LinkRefused",
    "Section",
    "write_archive",
]
