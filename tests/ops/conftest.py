"""The audit log fixtures (a platform PKI on disk, the log signer, pools), shared with
tests/audit for the rollback checks here."""

from tests.audit.conftest import data_dir, owner, platform, pool, signer

__all__ = ["data_dir", "owner", "platform", "pool", "signer"]
