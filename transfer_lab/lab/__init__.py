"""What only the book's chapters use: label curves, strategies, probes, transferability,
instruction tuning, exercises and the chapters' first cell. The core never imports it."""
