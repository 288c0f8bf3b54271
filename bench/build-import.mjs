// Benchmark scripts and peers that share code with the project import it from the build (dist/),
// which `npm run bench` makes first; this says so when it is missing, instead of a bare
// ERR_MODULE_NOT_FOUND.
export async function importBuild(rel, who) {
  try {
    return await import(new URL(`../dist/${rel}`, import.meta.url).href);
  } catch (err) {
    throw new Error(`${who} imports dist/${rel}: run \`npm run build\` first (\`npm run bench\` does)`, { cause: err });
  }
}
