# tests/fuzz.mk — libFuzzer targets for the recipe, grubenv, FAT and GPT parsers (corpora in tests/fuzz/corpus/<name>/).
FUZZERS += fuzz-recipe fuzz-grubenv fuzz-fat fuzz-gpt

fuzz-recipe_SRCS = tests/fuzz/fuzz-recipe.c image/recipe.c
fuzz-recipe_LIBS =

fuzz-grubenv_SRCS = tests/fuzz/fuzz-grubenv.c $(BOOTCFG_LIB_SRCS)
fuzz-grubenv_LIBS = $(BOOTCFG_LIBS)

fuzz-fat_SRCS = tests/fuzz/fuzz-fat.c bootcfg/fat.c
fuzz-fat_LIBS =

fuzz-gpt_SRCS = tests/fuzz/fuzz-gpt.c common/gpt.c
fuzz-gpt_LIBS = -lz
