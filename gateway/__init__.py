"""sealhub gateway: the HTTPS service through which departments exchange sealed documents."""

__version__ = "0.1.0"
