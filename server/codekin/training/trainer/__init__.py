"""Fine-tuning: the Trainer (trainer.py) with its arguments (args.py), losses (losses.py) and
fp8 linear layers (fp8.py). Imports nothing itself: `codekin train --help` needs only args.py."""
