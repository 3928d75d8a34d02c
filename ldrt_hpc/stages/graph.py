"""The stage graph: every stage, in pipeline order, with what it reads and what it plans from. One object, used
by the CLI (`ldrt-hpc stages`), `make demo` and the launcher; it imports no stage code, so asking it is free.

- `reads`: shard i of this stage reads shard i of those stages (same shard count, checked at planning).
- `plans_from`: this stage's plan is built from the *content* of those stages (e.g. `download` lists the papers
  that `search` found).
- `needs_all`: every shard of those stages must be complete before this stage runs (e.g. `answer`: the eval split
  is over all `qa` shards). A plan records the state of both kinds of inputs it was made from; a changed upstream
  makes it stale, and the stage refuses to run until it is re-planned.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StageNode:
    name: str
    module: str
    """Module under ldrt_hpc/stages/ that holds SCHEMA, run() and, for a stage that plans itself, make_plan()."""
    doc: str
    """One line for `ldrt-hpc stages` and the docs."""
    resource_class: str
    """'cpu', 'gpu' or 'multinode_gpu': the cluster profile's resources for it."""
    reads: tuple[str, ...] = ()
    plans_from: tuple[str, ...] = ()
    needs_all: tuple[str, ...] = ()
    """Stages every shard of which must be complete before any shard of this one runs (a split over all of
    them): `pipeline run` makes the whole stage wait for those, not shard i for shard i."""

    @property
    def inputs(self) -> tuple[str, ...]:
        return self.reads + tuple(name for name in self.plans_from + self.needs_all if name not in self.reads)


class StageGraph:
    """Stages in pipeline order; every input names an earlier stage."""

    def __init__(self, nodes: list[StageNode]):
        self.nodes = {node.name: node for node in nodes}
        for position, node in enumerate(nodes):
            earlier = {n.name for n in nodes[:position]}
            unknown = [name for name in node.inputs if name not in earlier]
            if unknown:
                raise ValueError(f"stage '{node.name}' depends on {unknown}, which do not come before it")

    @property
    def names(self) -> list[str]:
        return list(self.nodes)

    def __getitem__(self, name: str) -> StageNode:
        try:
            return self.nodes[name]
        except KeyError:
            raise KeyError(f"unknown stage '{name}' (known stages: {', '.join(self.nodes)})") from None

    def __contains__(self, name: str) -> bool:
        return name in self.nodes

    def between(self, first: str | None = None, last: str | None = None) -> list[str]:
        """The stages from `first` to `last` in pipeline order (both included; None: from the start / to the end)."""
        names = self.names
        start = names.index(self[first].name) if first else 0
        stop = names.index(self[last].name) + 1 if last else len(names)
        if start >= stop:
            raise ValueError(f"stage '{first}' comes after '{last}' in the pipeline ({' -> '.join(names)})")
        return names[start:stop]

    def downstream(self, name: str) -> list[str]:
        """The stages that read or plan from `name`, directly or through others, in pipeline order."""
        found = {self[name].name}
        for node in self.nodes.values():
            if found & set(node.inputs):
                found.add(node.name)
        return [n for n in self.names if n in found and n != name]

    def describe(self) -> str:
        lines = []
        for node in self.nodes.values():
            edges = [f"reads {', '.join(node.reads)}"] if node.reads else []
            edges += [f"plans from {', '.join(node.plans_from)}"] if node.plans_from else []
            lines.append(f"{node.name:9} [{node.resource_class}] {node.doc}" + (f"  ({'; '.join(edges)})" if edges else ""))
        return "\n".join(lines)


GRAPH = StageGraph([
    StageNode("search", "search", "Semantic Scholar bulk search over the keyword list; unique open-access papers",
              "cpu"),
    StageNode("download", "download", "fetch the open-access PDFs of the unique papers found by `search`", "cpu",
              plans_from=("search",)),
    StageNode("ingest", "ingest", "check every PDF and record it (paper id, sha256, pages, problems)", "cpu",
              plans_from=("download",)),  # only with stages.ingest.from_download; else it plans from a folder
    StageNode("convert", "convert", "PDF -> Markdown (native PyMuPDF reading order, or pymupdf4llm / marker)", "cpu",
              reads=("ingest",)),
    StageNode("figures", "figures", "figures and tables with captions, boxes and rendered crops", "cpu",
              reads=("ingest",)),
    StageNode("filter", "image_filter", "drop blurry and tiny images (stages.filter thresholds); every decision kept",
              "cpu", reads=("figures",)),
    StageNode("context", "context", "the sentences of the paper that mention each kept figure", "cpu",
              reads=("convert", "figures", "filter")),
    StageNode("qa", "qa", "LLM-written detailed descriptions and complex-reasoning Q&A per kept figure", "gpu",
              reads=("context",)),
    # the eval split is by paper over all qa shards: shard i answers the eval items of qa shard i
    StageNode("answer", "answer", "every eval item answered by every model (base and fine-tuned LLaVA)", "gpu",
              reads=("qa", "figures"), needs_all=("qa",)),
    StageNode("judge", "judge", "every answer scored by every LLM judge (LLaVA review in both orders, 0-10 score)",
              "gpu", reads=("answer", "context")),
    StageNode("hallucination", "hallucination", "every answer against caption + context: ROUGE, hedging words, "
              "length ratio, unsupported specific terms", "cpu", reads=("answer", "context")),
])
