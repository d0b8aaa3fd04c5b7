"""Thin Pulumi layer: each component turns one part of a plan into resources."""
