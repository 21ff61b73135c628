"""Vendor dialects: parse → call a service → render. Nothing else."""
