"""`kubectl agentfleet`: the kubectl plugin for watching and steering Agent rollouts.

A separate program from the operator: it talks to the API server with the synchronous `kubernetes`
client and never imports the operator's handlers, reconcilers or kube helpers. It reads the API
models and rollout constants only, so both sides agree on field and annotation names.

render: pure text formatting (unit-tested); plugin: argument parsing, API calls, exit codes.
"""
