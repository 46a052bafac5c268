"""The RMM feed: what the RMM knows, merged into monitord and cross-checked by it.

The adapters (`monitord.sources.rmm`) only fetch and translate; everything that
decides lives here, and every decision is stored (`store`), never kept only in
memory:

- `mapping`: an RMM inventory snapshot → the rows of the device mapping (which
  customer, site and monitord device each RMM device is; conflicts; logons);
- `merge`: the config's inventory plus the synced devices (with template checks,
  site gateways or synthetic uplinks as parents) → the running inventory;
- `verdicts`: an RMM failure and monitord's evidence → a verdict, the rule that
  decided it, and the identity of the incident it feeds;
- `evidence`: monitord's own check states plus on-demand verification checks;
- `feed`: the daemon side: polls, syncs, observations, events, feed health;
- `metrics`, `views`: what Prometheus, the API and the CLI show.
"""
