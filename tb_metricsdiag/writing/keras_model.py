"""What the callback reads off a Keras model: its loss, output activation, metrics, and
whether this process writes under a distribution strategy.
"""


def loss_config(compile_config):
    """(name, from_logits) of the compiled loss, from Keras's serialized compile config."""
    loss = (compile_config or {}).get("loss")
    if isinstance(loss, dict):
        config = loss.get("config") or {}
        name = config.get("name") or loss.get("class_name")
        return str(name), config.get("from_logits")
    if isinstance(loss, str):
        return loss, None
    if callable(loss):
        return getattr(loss, "__name__", type(loss).__name__), getattr(loss, "from_logits", None)
    return (None if loss is None else str(loss)), None


def last_activation(model):
    """Name of the activation that produces the model's output, or None when unknown."""
    layers = getattr(model, "layers", None) or []
    for layer in reversed(layers):
        class_name = type(layer).__name__
        if class_name == "Softmax":
            return "softmax"
        activation = getattr(layer, "activation", None)
        if activation is not None:
            return getattr(activation, "__name__", str(activation))
        if class_name not in ("Dropout", "Reshape", "Flatten", "Identity"):
            return None
    return None


def metric_names(compile_config):
    """Names of the compiled metrics, from Keras's serialized compile config."""

    def names_in(entry):
        if isinstance(entry, dict) and "class_name" in entry:  # one serialized metric
            yield str((entry.get("config") or {}).get("name") or entry["class_name"])
        elif isinstance(entry, dict):  # metrics per named output
            for value in entry.values():
                yield from names_in(value)
        elif isinstance(entry, (list, tuple)):
            for value in entry:
                yield from names_in(value)
        elif entry is not None:
            yield str(getattr(entry, "name", None) or getattr(entry, "__name__", None) or entry)

    config = compile_config or {}
    return [
        name for group in ("metrics", "weighted_metrics") for name in names_in(config.get(group))
    ]


def is_chief(strategy):
    """Whether this process writes: always, except on the non-chief workers of a multi-worker
    strategy (the chief, or worker 0 when the cluster has no chief, writes).
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    cluster = resolver.cluster_spec().as_dict() if resolver is not None else {}
    if not cluster:
        return True
    if resolver.task_type == "chief":
        return True
    return resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in cluster
