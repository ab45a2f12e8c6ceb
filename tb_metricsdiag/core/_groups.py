"""Group ids: rows that fall into groups (the slices of a group key) are counted in one pass.

The counting functions and accumulators that take ``groups`` (`counting`, `calibration`,
`examples`) give each group's counts, the same as of that group's rows alone, stacked along a
leading ``[num_groups]`` dimension. Public through `counting.check_groups`.
"""

import numpy as np


def check_groups(groups, num_groups, num_rows):
    """``groups`` as int64 group ids ``[num_rows]`` in ``[0, num_groups)``; None stays None.

    Raises:
      ValueError: ids of another shape, type or range, or groups without ``num_groups``.
    """
    if groups is None:
        return None
    if num_groups is None or int(num_groups) < 1:
        raise ValueError("groups need num_groups >= 1, got %r" % (num_groups,))
    groups = np.asarray(groups)
    if groups.shape != (num_rows,) or (groups.size and groups.dtype.kind not in "iu"):
        raise ValueError(
            "groups must be %d integer group ids, got %s of %s"
            % (num_rows, groups.shape, groups.dtype)
        )
    if groups.size and (groups.min() < 0 or groups.max() >= int(num_groups)):
        raise ValueError(
            "groups hold ids outside [0, %d): found %d..%d"
            % (int(num_groups), groups.min(), groups.max())
        )
    return groups.astype(np.int64, copy=False)
