"""The benchmark: baseline policies × scenarios, the hindsight optimum and the leaderboard."""
