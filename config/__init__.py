"""Stack configuration: pydantic models, loading, and the errors they raise."""

from .errors import Problem, StackConfigError
from .loading import NAMESPACE, StackFile, config_keys, parse_stack_config, stack_names
from .models import SiteSettings, StackConfig

__all__ = [
    "NAMESPACE",
    "Problem",
    "SiteSettings",
    "StackConfig",
    "StackConfigError",
    "StackFile",
    "config_keys",
    "parse_stack_config",
    "stack_names",
]
