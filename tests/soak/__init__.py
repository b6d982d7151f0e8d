"""The soak (``make soak``, ``python -m tests.soak``): thousands of runs while every process
and both servers are killed and restarted at random; see __main__.py."""
