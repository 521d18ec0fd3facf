// A build script makes cargo honour the [build-dependencies] section as well.
fn main() {}
