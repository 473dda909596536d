"""The benchmark itself: question sets, judge prompts and references, FastChat's judging rules."""
