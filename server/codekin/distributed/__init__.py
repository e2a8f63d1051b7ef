"""Running the same pipeline on existing distributed engines: Ray Data for chunking and
embedding (`ray_embed`), torchrun/DDP for fine-tuning (`torchrun`). Both are optional:
nothing here is imported unless `--engine ray` or `--gpus N` asks for it."""
