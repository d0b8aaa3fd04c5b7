"""The pure core: stack configuration in, plan out. No Pulumi import here."""

from .build import build_plan
from .model import Plan

__all__ = ["Plan", "build_plan"]
