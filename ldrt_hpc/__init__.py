"""ldrt-hpc: an HPC batch job suite that turns the open-access literature into a vision-language assistant."""

__version__ = "0.1.0"
