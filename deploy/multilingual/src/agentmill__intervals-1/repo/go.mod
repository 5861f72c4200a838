module agentmill/intervals

go 1.19
