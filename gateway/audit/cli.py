"""``sealhub audit verify`` and ``sealhub audit erase-details``: the server-side audit tools.

``verify`` reads the log straight from the database (as the application role, read only).
It runs where the gateway runs, for the operator and for an inspector auditing on site: the
database is the thing under suspicion, and every check is made against evidence the
database cannot forge — note signatures by the pinned log key, RFC 3161 tokens chained to
the platform root, the checkpoint remembered in ``--state`` from the previous run, and the
checkpoints inspectors cosigned, kept outside the database (``DIR/audit/cosigned/``, and the
inspector's own copies given with ``--checkpoint``). A log smaller than a cosigned tree, or
disagreeing with one, has been rolled back (a restore from backup, or worse): that is
reported as a rollback with its own exit status, never accepted.
Inspectors off site use the SDK's ``sealctl audit verify`` over HTTPS (same checks, public
proofs). The tool recomputes every leaf and the whole tree, compares the stored Merkle nodes,
every kept checkpoint and the remembered one, and reports the first bad index.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import rfc8785
from asn1crypto import cms, tsp
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.x509.oid import ExtendedKeyUsageOID

from gateway.config import Settings
from keys.clock import SYSTEM_CLOCK
from keys.codes import Code, CodedError
from keys.files import atomic_write
from keys.keystore import CHECKPOINT
from keys.master import load_or_create_master_key
from storage import audit_leaf, audit_log, cosigned, merkle
from storage.db import APP_ROLE, OWNER_ROLE, DbConnection, connect
from storage.signed_note import (
    NoteError,
    NoteVerifier,
    open_note,
    parse_checkpoint,
    parse_verifier_key,
)

CHUNK = 5000


class TimestampError(CodedError):
    code = Code.TIMESTAMP_INVALID


# --- RFC 3161 ------------------------------------------------------------------------------


def _chain_ok(cert: x509.Certificate, anchors: Sequence[x509.Certificate]) -> bool:
    for anchor in anchors:
        try:
            cert.verify_directly_issued_by(anchor)
            return True
        except (ValueError, TypeError, InvalidSignature):
            continue
    return False


def verify_timestamp(
    token_der: bytes,
    data: bytes,
    root: x509.Certificate,
    intermediates: Sequence[x509.Certificate] = (),
) -> datetime:
    """Check an RFC 3161 token over SHA-256(``data``) chained to ``root``; returns genTime."""
    try:
        info = cms.ContentInfo.load(token_der)
        if info["content_type"].native != "signed_data":
            raise TimestampError("not a SignedData token")
        signed = info["content"]
        encap = signed["encap_content_info"]
        if encap["content_type"].native != "tst_info":
            raise TimestampError("the token does not hold a TSTInfo")
        tst_der = bytes(encap["content"].contents)
        tst = tsp.TSTInfo.load(tst_der)
        imprint = tst["message_imprint"]
        if imprint["hash_algorithm"]["algorithm"].native != "sha256":
            raise TimestampError("the token does not use SHA-256")
        if imprint["hashed_message"].native != hashlib.sha256(data).digest():
            raise TimestampError("the token is over other data")
        signer = signed["signer_infos"][0]
        attrs = {a["type"].native: a["values"][0] for a in signer["signed_attrs"]}
        if attrs["message_digest"].native != hashlib.sha256(tst_der).digest():
            raise TimestampError("the signed digest does not match the TSTInfo")
        sid = signer["sid"].chosen
        cert_der = next(
            c.chosen.dump()
            for c in signed["certificates"]
            if c.chosen.serial_number == sid["serial_number"].native
            and c.chosen.issuer == sid["issuer"]
        )
        signed_attrs = b"\x31" + signer["signed_attrs"].dump()[1:]  # [0] IMPLICIT -> SET OF
        signature = signer["signature"].native
        gen_time: datetime = tst["gen_time"].native
    except (ValueError, KeyError, TypeError, StopIteration, IndexError):
        raise TimestampError("the token is malformed") from None
    cert = x509.load_der_x509_certificate(cert_der)
    public = cert.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey):
        raise TimestampError("the TSA key is not an EC key")
    try:
        public.verify(signature, signed_attrs, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise TimestampError("the TSA signature does not verify") from None
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        raise TimestampError("the signer is not a time-stamping certificate") from None
    if ExtendedKeyUsageOID.TIME_STAMPING not in eku:
        raise TimestampError("the signer is not a time-stamping certificate")
    if not (
        _chain_ok(cert, [root])
        or any(_chain_ok(cert, [i]) and _chain_ok(i, [root]) for i in intermediates)
    ):
        raise TimestampError("the TSA certificate does not chain to the platform root")
    if not cert.not_valid_before_utc <= gen_time <= cert.not_valid_after_utc:
        raise TimestampError("the token was made outside the TSA certificate's validity")
    return gen_time


# --- state and report ----------------------------------------------------------------------


@dataclass
class VerifyState:
    """What a previous successful run trusted: the log key and the checkpoint it verified."""

    verifier_key: str
    tree_size: int = 0
    root_hash: str = ""  # base64
    frontier: list[str] = field(default_factory=list)  # base64, perfect subtrees of the tree
    note: str = ""

    @classmethod
    def load(cls, path: Path) -> VerifyState | None:
        if not path.exists():
            return None
        data = json.loads(path.read_text("utf-8"))
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})

    def save(self, path: Path) -> None:
        text = json.dumps(asdict(self), ensure_ascii=False, indent=1)
        atomic_write(path, text.encode("utf-8"), 0o600)


@dataclass(frozen=True)
class Problem:
    """``index``: the first log index implicated; with ``end``, somewhere in [index, end)."""

    index: int | None
    message: str
    end: int | None = None
    rollback: bool = False  # the log lost or changed entries an inspector cosigned


@dataclass
class VerifyReport:
    tree_size: int = 0
    checkpoints: int = 0
    problems: list[Problem] = field(default_factory=list)
    new_state: VerifyState | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def rolled_back(self) -> bool:
        return any(p.rollback for p in self.problems)

    @property
    def first_bad_index(self) -> int | None:
        """The smallest exact index; a root mismatch counts only where no exact index
        inside its range explains it (a root cannot say which leaf changed)."""
        exact = [p.index for p in self.problems if p.index is not None and p.end is None]
        candidates = list(exact)
        for p in self.problems:
            low, end = p.index, p.end
            if low is None or end is None:
                continue
            if not any(low <= i < end for i in exact):
                candidates.append(low)
        return min(candidates) if candidates else None

    def add(
        self, index: int | None, message: str, *, end: int | None = None, rollback: bool = False
    ) -> None:
        self.problems.append(Problem(index, message, end, rollback))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# --- the verifier --------------------------------------------------------------------------


def _check_entry(entry: audit_log.LogEntry, report: VerifyReport) -> None:
    if entry.leaf != entry.expected_leaf():
        report.add(entry.index, f"entry {entry.index}: leaf does not match its row or position")
        return
    try:
        if rfc8785.dumps(json.loads(entry.leaf)) != entry.leaf:
            report.add(entry.index, f"entry {entry.index}: leaf is not canonical JSON")
    except (ValueError, rfc8785.CanonicalizationError):
        report.add(entry.index, f"entry {entry.index}: leaf is not JSON")
    details, salt = entry.details, entry.salt
    if details is None or salt is None:  # erased: only the leaf's details_hash remains
        return
    if audit_leaf.details_hash(salt, details) != entry.details_hash:
        report.add(entry.index, f"entry {entry.index}: details do not match details_hash")


async def _stored_nodes(
    connection: DbConnection, new_nodes: dict[merkle.NodeId, bytes]
) -> dict[tuple[int, int], bytes]:
    """Stored nodes at the (level, index) ranges of ``new_nodes``: one range scan per level."""
    bounds: dict[int, tuple[int, int]] = {}
    for node in new_nodes:
        low, high = bounds.get(node.level, (node.index, node.index))
        bounds[node.level] = (min(low, node.index), max(high, node.index))
    return await audit_log.fetch_node_ranges(connection, bounds)


def _checkpoint_problems(
    checkpoints: list[audit_log.StoredCheckpoint],
    verifiers: list[NoteVerifier],
    root: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    report: VerifyReport,
) -> dict[int, bytes]:
    """Signed roots by tree size (only checkpoints whose signature and token verify)."""
    claims: dict[int, bytes] = {}
    for checkpoint in checkpoints:
        label = f"checkpoint #{checkpoint.id} (size {checkpoint.tree_size})"
        try:
            opened = open_note(checkpoint.note, verifiers)
            parsed = parse_checkpoint(opened.text)
        except NoteError as exc:
            report.add(None, f"{label}: note does not verify: {exc}")
            continue
        if (parsed.size, parsed.root_hash) != (checkpoint.tree_size, checkpoint.root_hash):
            report.add(None, f"{label}: stored size or root differs from the signed note")
        try:
            verify_timestamp(
                checkpoint.timestamp_token, checkpoint.note.encode(), root, intermediates
            )
        except TimestampError as exc:
            report.add(None, f"{label}: time-stamp token: {exc}")
        previous = claims.get(parsed.size)
        if previous is not None and previous != parsed.root_hash:
            report.add(None, f"fork: two signed checkpoints of size {parsed.size} differ")
        claims.setdefault(parsed.size, parsed.root_hash)
    return claims


async def verify_log(
    connection: DbConnection,
    *,
    state: VerifyState,
    root: x509.Certificate,
    intermediates: Sequence[x509.Certificate] = (),
    chunk: int = CHUNK,
    witnessed: Sequence[cosigned.CosignedCopy] = (),
) -> VerifyReport:
    """Every check of ``sealhub audit verify``; the report says what failed and where.
    *witnessed*: cosigned checkpoints kept outside the database (rollback detection)."""
    report = VerifyReport()
    verifiers = [parse_verifier_key(state.verifier_key)]
    checkpoints = await audit_log.list_checkpoints(connection)
    report.checkpoints = len(checkpoints)
    claims = _checkpoint_problems(checkpoints, verifiers, root, intermediates, report)
    witnessed_roots = _witnessed_claims(witnessed, verifiers, report)
    remembered = base64.b64decode(state.root_hash) if state.tree_size else None
    if remembered is not None:
        other = claims.get(state.tree_size)
        if other is not None and other != remembered:
            report.add(None, f"fork: the log now signs another root for size {state.tree_size}")
    size = await audit_log.log_size(connection)
    report.tree_size = size
    for s, (source, _) in sorted(witnessed_roots.items()):
        if s > size:
            report.add(size, rollback_message(s, size, source), rollback=True)
    # Roots to compare, by size: signed checkpoints, cosigned copies and the remembered one.
    wanted = sorted(
        {s for s in [*claims, *witnessed_roots] if 0 < s <= size} | ({state.tree_size} - {0})
    )
    for s in sorted(set(claims) | {state.tree_size}):
        if s > size:
            report.add(size, f"the log has {size} entries but a checkpoint covered {s}")
    frontier = merkle.Frontier.empty()
    recomputed: dict[int, merkle.Frontier] = {}
    stops = [s for s in wanted if s <= size] + [size]
    position = 0
    for stop in stops:
        while position < stop:
            end = min(stop, position + chunk)
            entries = await audit_log.entries_range(connection, position, end)
            expected = position
            for entry in entries:
                if entry.index != expected:
                    report.add(expected, f"entry {expected} is missing")
                    expected = entry.index
                _check_entry(entry, report)
                expected += 1
            if expected != end:
                report.add(expected, f"entry {expected} is missing")
            appended = merkle.append_leaves(
                frontier, [merkle.leaf_hash(entry.leaf) for entry in entries]
            )
            stored = await _stored_nodes(connection, appended.new_nodes)
            for node, value in appended.new_nodes.items():
                if stored.get(node) != value:
                    report.add(node.begin, f"stored Merkle node {tuple(node)} is wrong or missing")
                    break
            frontier = appended.frontier
            position = end
            if frontier.size != position:  # rows were missing: sizes no longer line up
                return report
        recomputed[stop] = frontier
    for s, (source, witnessed_root) in sorted(witnessed_roots.items()):
        if s <= size and recomputed[s].root() != witnessed_root:
            report.add(0, rewritten_message(s, source), end=s, rollback=True)
    matched = [s for s in wanted if s in claims and recomputed[s].root() == claims[s]]
    for s in wanted:
        if s in claims and recomputed[s].root() != claims[s]:
            low = max([m for m in matched if m < s], default=0)
            message = f"entries in [{low}, {s}) differ from the signed checkpoint of size {s}"
            report.add(low, message, end=s)
    if remembered is not None and state.tree_size <= size:
        now = recomputed[state.tree_size]
        if now.root() != remembered:
            low = max([m for m in matched if m < state.tree_size], default=0)
            then = [base64.b64decode(h) for h in state.frontier]
            for node, old, new in zip(now.node_ids, then, now.hashes, strict=False):
                if old != new:
                    low = max(low, node.begin)
                    break
            message = f"entries since {low} differ from the checkpoint remembered in the state"
            report.add(low, message, end=state.tree_size)
    if checkpoints and report.ok:
        latest = max(checkpoints, key=lambda c: (c.tree_size, c.id))
        if remembered is not None and state.tree_size < latest.tree_size:
            proof = await audit_log.consistency_proof(connection, state.tree_size, latest.tree_size)
            try:
                merkle.verify_consistency(
                    state.tree_size, latest.tree_size, proof, remembered, latest.root_hash
                )
            except merkle.InvalidProofError as exc:
                report.add(state.tree_size, f"consistency proof from the remembered tree: {exc}")
        final = recomputed[latest.tree_size]
        report.new_state = VerifyState(
            verifier_key=state.verifier_key,
            tree_size=latest.tree_size,
            root_hash=_b64(latest.root_hash),
            frontier=[_b64(h) for h in final.hashes],
            note=latest.note,
        )
    return report


def rollback_message(cosigned_size: int, size: int, source: object) -> str:
    return (
        f"ROLLBACK: an inspector cosigned the log at tree size {cosigned_size} ({source}),"
        f" but the log now has only {size} entries: {cosigned_size - size} witnessed entries"
        " are gone (restored from an older backup?)"
    )


def rewritten_message(cosigned_size: int, source: object) -> str:
    return (
        f"ROLLBACK: the log's first {cosigned_size} entries differ from the tree of size"
        f" {cosigned_size} an inspector cosigned ({source}): witnessed history was rewritten"
    )


def _witnessed_claims(
    witnessed: Sequence[cosigned.CosignedCopy],
    verifiers: list[NoteVerifier],
    report: VerifyReport,
) -> dict[int, tuple[Path, bytes]]:
    """Cosigned roots by tree size; a note this log's key did not sign is a problem (it
    proves nothing about this log), two cosigned roots for one size a fork."""
    roots: dict[int, tuple[Path, bytes]] = {}
    for copy in witnessed:
        try:
            parsed = parse_checkpoint(open_note(copy.note, verifiers).text)
        except NoteError as exc:
            report.add(None, f"cosigned checkpoint {copy.source}: not signed by the log key: {exc}")
            continue
        earlier = roots.get(parsed.size)
        if earlier is not None and earlier[1] != parsed.root_hash:
            report.add(
                None,
                f"fork: cosigned checkpoints {earlier[0]} and {copy.source} of size"
                f" {parsed.size} differ",
                rollback=True,
            )
        roots.setdefault(parsed.size, (copy.source, parsed.root_hash))
    return roots


async def rollback_problems(
    connection: DbConnection,
    witnessed: Sequence[cosigned.CosignedCopy],
    verifiers: list[NoteVerifier],
) -> list[str]:
    """The quick form of the rollback check (stored tree nodes, no recomputation), for the
    gateway's start and for ``sealhub restore``: one message per cosigned checkpoint the log
    no longer contains."""
    report = VerifyReport()
    roots = _witnessed_claims(witnessed, verifiers, report)
    messages = [p.message for p in report.problems]
    size = await audit_log.log_size(connection)
    for s, (source, root) in sorted(roots.items()):
        if s > size:
            messages.append(rollback_message(s, size, source))
        elif await audit_log.root_at(connection, s) != root:
            messages.append(rewritten_message(s, source))
    return messages


# --- command line --------------------------------------------------------------------------


def add_audit_commands(subparsers: Any) -> None:
    """``audit verify`` and ``audit erase-details`` under the ``sealhub`` parser."""
    audit = subparsers.add_parser("audit", help="verify or administer the audit log")
    commands = audit.add_subparsers(dest="audit_command", required=True, metavar="AUDIT_COMMAND")
    verify = commands.add_parser("verify", help="recompute the log and check its checkpoints")
    verify.add_argument("--data-dir", dest="sub_data_dir", help="data directory")
    verify.add_argument(
        "--state", type=Path, required=True, help="JSON file with the last verified checkpoint"
    )
    verify.add_argument(
        "--log-key", help="verifier key to pin on the first run (default: the key store's)"
    )
    verify.add_argument("--ca-file", type=Path, help="platform root (default DIR/pki/ca.pem)")
    verify.add_argument(
        "--checkpoint",
        type=Path,
        action="append",
        default=[],
        help="a checkpoint note an inspector cosigned (their own copy); repeatable. The copies"
        " the gateway kept in DIR/audit/cosigned/ are checked too",
    )
    erase = commands.add_parser("erase-details", help="erase details, keeping details_hash")
    erase.add_argument("--data-dir", dest="sub_data_dir", help="data directory")
    erase.add_argument("--index", type=int, action="append", default=[], help="log index")
    erase.add_argument("--actor", help="every entry by this official")
    erase.add_argument("--document", help="every entry about this document")


def log_public_key(settings: Settings) -> Ed25519PublicKey:
    """The active checkpoint key's public half, from the key store."""
    master = load_or_create_master_key(
        settings.data_dir / "secrets" / "master.key", settings.master_key
    )
    from gateway.runtime import open_keystore

    store = open_keystore(settings, master)
    info = store.active_info(CHECKPOINT)
    public = store.get_public(CHECKPOINT, info.kid)
    if not isinstance(public, Ed25519PublicKey):
        raise audit_log.AuditLogError("the checkpoint key is not Ed25519")
    return public


def pinned_log_key(settings: Settings) -> str:
    """The active checkpoint key from the key store (first run only; later runs use --state)."""
    origin = audit_log.log_origin(settings.public_origin)
    return NoteVerifier.from_public_key(origin, log_public_key(settings)).verifier_key


async def _verify(settings: Settings, args: argparse.Namespace) -> int:
    from gateway.runtime import database_urls

    state = VerifyState.load(args.state)
    if state is None:
        state = VerifyState(verifier_key=args.log_key or pinned_log_key(settings))
    ca_file = args.ca_file or settings.data_dir / "pki" / "ca.pem"
    root = x509.load_pem_x509_certificate(ca_file.read_bytes())
    chain_file = ca_file.parent / "chain.pem"
    intermediates = (
        x509.load_pem_x509_certificates(chain_file.read_bytes()) if chain_file.exists() else []
    )
    witnessed = [
        *cosigned.read_all(cosigned.cosigned_dir(settings.data_dir)),
        *(cosigned.read_file(path) for path in args.checkpoint),
    ]
    async with database_urls(settings) as urls:
        connection = await connect(urls.app, role=APP_ROLE)
        try:
            async with connection.transaction(isolation="repeatable_read", readonly=True):
                report = await verify_log(
                    connection,
                    state=state,
                    root=root,
                    intermediates=intermediates,
                    witnessed=witnessed,
                )
        finally:
            await connection.close()
    for problem in report.problems:
        print(f"problem: {problem.message}")
    if report.rolled_back:
        print(
            f"ROLLBACK DETECTED: the log ({report.tree_size} entries) has lost or changed"
            " entries an inspector cosigned; do not accept it: tell the inspectors"
        )
        return 3
    if not report.ok:
        first = report.first_bad_index
        print(f"FAILED: first bad index: {first if first is not None else 'unknown'}")
        return 1
    if report.new_state is not None:
        report.new_state.save(args.state)
    print(
        f"OK: {report.tree_size} entries, {report.checkpoints} checkpoints;"
        f" remembered tree size {report.new_state.tree_size if report.new_state else 0}"
    )
    return 0


async def _erase(settings: Settings, args: argparse.Namespace) -> int:
    from gateway.runtime import database_urls

    async with database_urls(settings) as urls:
        # The owner's login: the application login cannot change the log.
        connection = await connect(urls.admin, role=OWNER_ROLE)
        try:
            count = await audit_log.erase_details(
                connection,
                indices=args.index,
                actor=args.actor,
                document=args.document,
                now=SYSTEM_CLOCK(),
            )
        finally:
            await connection.close()
    print(f"erased the details of {count} entries")
    return 0


def run_audit_command(args: argparse.Namespace, settings: Settings) -> int:
    """Exit status: 0 verified / done, 1 verification failed, 2 unusable input, 3 the log was
    rolled back behind a cosigned checkpoint."""
    try:
        if args.audit_command == "verify":
            return asyncio.run(_verify(settings, args))
        if args.audit_command == "erase-details":
            if not (args.index or args.actor or args.document):
                print("sealhub: say which entries: --index, --actor or --document")
                return 2
            return asyncio.run(_erase(settings, args))
    except (OSError, ValueError, NoteError, audit_log.AuditLogError) as exc:
        print(f"sealhub: {exc}")
        return 2
    return 2
