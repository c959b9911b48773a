"""
capped.py — the per-hash naming rule shared by the action cap
(docs/REDIS.md, `action_cap`) and the coupon cap (docs/METRICS.md,
`coupons.cap`), written from the docs: in each counter hash, the first `cap`
distinct values to reach it keep their own field, every later value and the
literal `__other__` go to the `__other__` field. "First" is arrival order,
which is only defined within one partition: a hash that overflows while fed
by several partitions cannot be predicted, and the oracle says so instead of
guessing.
"""

OTHER = "__other__"


class CappedNames:
    def __init__(self, cap, what):
        self.cap = cap
        self.what = what   # "actions", "coupons": for the refusal message
        self.named = {}    # hash key -> [set of named values, partition or None]

    def name(self, k, value, part):
        """The name `value` is counted under in hash k (a tuple), seen from
        partition `part`: value itself or OTHER."""
        a = self.named.get(k)
        if a is None:
            a = self.named[k] = [set(), part]
        elif a[1] != part:
            a[1] = None
        named = a[0]
        if value not in named and value != OTHER and len(named) < self.cap:
            named.add(value)
        if value in named:
            return value
        if a[1] is None:
            raise SystemExit(
                "oracle: hash %s has more than %d %s from several partitions; "
                "which keep their field depends on arrival order"
                % (":".join(map(str, k)), self.cap, self.what))
        return OTHER
