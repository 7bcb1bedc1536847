# image/mkimage.mk — cairn-mkimage (ext4 images from .debs/tars/dirs) and its tests.
MKIMAGE_LIB_SRCS = image/ext4w.c image/input.c image/recipe.c
MKIMAGE_LIBS = -larchive -lext2fs -lcom_err -lcrypto

BINS += cairn-mkimage
cairn-mkimage_SRCS = image/mkimage.c $(MKIMAGE_LIB_SRCS)
cairn-mkimage_LIBS = $(MKIMAGE_LIBS)

UNIT_TESTS += test-ext4w test-recipe
test-ext4w_SRCS = tests/unit/test-ext4w.c $(MKIMAGE_LIB_SRCS)
test-ext4w_LIBS = $(MKIMAGE_LIBS)
test-recipe_SRCS = tests/unit/test-recipe.c image/recipe.c
test-recipe_LIBS =
