"""Testing custom actions: the real-engine runner and its log parser."""
