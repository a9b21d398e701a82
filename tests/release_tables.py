"""Every protected table of a store's latest release, as CSV text: each measure in total
and by each of its breakdowns. The digest test hashes them; the Spark test compares two
runs' tables."""

from __future__ import annotations

from anonymise import cellkey
from anonymise.policy import Policy
from anonymise.release import tabulate
from pipelines.store import Store


def protected_tables(store: Store, policy: Policy, secret: bytes) -> dict[str, str]:
    release = store.latest_release()
    assert release is not None
    ptable = cellkey.ptable_for(policy.max_noise, policy.variance, secret)
    out = {}
    for meta in store.read_meta(release.release_id).values():
        for by in [(), *((b,) for b in meta.breakdowns)]:
            table = tabulate(store, meta.name, by, policy=policy, ptable=ptable)
            out[f"{meta.name}|{','.join(by) or 'total'}"] = table.data.write_csv()
    return out
