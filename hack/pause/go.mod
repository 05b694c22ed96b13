module agentfleet.local/pause

go 1.22
