"""The benchmark suite: the service measured side by side with the floor and a DIY peer."""
