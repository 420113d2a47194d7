"""Typed exceptions for user input.

Every error a user can cause by a wrong argument, file or tensor is one of these.
They subclass the built-in ``ValueError``/``TypeError`` so ordinary ``except
ValueError`` code keeps working, and each message names the parameter, the value
received and what is allowed.
"""

from __future__ import annotations


class AuraError(Exception):
    """Base class of every aura-snn exception."""


class ParameterError(AuraError, ValueError):
    """A parameter has an invalid value (``tau <= 0``, unknown option, ...)."""


class ShapeError(AuraError, ValueError):
    """A tensor has the wrong number of dimensions or the wrong shape."""


class InputValueError(AuraError, ValueError):
    """A tensor holds values that are not allowed (NaN, inf, negative rates, ...)."""


class ParameterTypeError(AuraError, TypeError):
    """A parameter has the wrong type."""


class ConfigError(AuraError, ValueError):
    """A configuration file is invalid; the message names the file, field and line."""


class CorruptFileError(AuraError, ValueError):
    """A saved file is truncated, corrupt or of an unknown format."""


class MissingExtraError(AuraError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""


class StateMismatchError(ParameterError):
    """A saved state is intact but was saved from another graph (a region's size or
    model, a projection's structure, ``dt``); the message names the first difference."""
