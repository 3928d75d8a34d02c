"""Instruction data from figures: prompts, template matching, parsing of the model's replies, the post-filter,
the generation loop over a shard's figures, and the paper-grouped train/eval split. The `qa` stage
(ldrt_hpc/stages/qa.py) drives them over one shard; `export llava` uses the split."""
