/*
 * Test module: a shared object without a px_module_info descriptor, such as
 * a stray library in the module directory; the loader must refuse it.
 */
__attribute__((visibility("default"))) int tm_no_descriptor_marker = 1;
