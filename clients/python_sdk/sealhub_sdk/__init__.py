"""Client for the sealhub gateway (grows with the SDK issue)."""

__version__ = "0.1.0"
__all__ = ["__version__"]
