"""Private implementation modules of sealhub_sdk; import from the package instead."""
