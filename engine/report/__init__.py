"""What a store shows: terminal tables, `mtbench show`, and the self-contained HTML report."""
