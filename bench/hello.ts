// The start-up baseline for bench/startup.sh: print a constant.
// deno-lint-ignore no-console
console.log(41234);
