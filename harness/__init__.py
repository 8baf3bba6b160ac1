"""What measures the stack from the host: launching servers, the benchmark, the load-test
report, its charts and its Locust runs. Never shipped in an image; the Locust image runs
only loadtest/."""
