"""Feature flags: Unleash definitions from a server or the flags file, evaluated in-process."""

from services.flags.handlers import CONSUMER, build_handlers, clear_store
from services.flags.service import FlagInfo, FlagsConfig, FlagsService, FlagState, FlagVariant
from services.flags.unleash import (
    FileSource,
    FlagsSourceError,
    UnleashServerSource,
    parse_definitions,
)

__all__ = [
    "CONSUMER",
    "FileSource",
    "FlagInfo",
    "FlagState",
    "FlagVariant",
    "FlagsConfig",
    "FlagsService",
    "FlagsSourceError",
    "UnleashServerSource",
    "build_handlers",
    "clear_store",
    "parse_definitions",
]
