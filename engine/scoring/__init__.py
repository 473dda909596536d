"""Scores from judgments: FastChat's leaderboards, bootstrap intervals, judge reliability (pure)."""
