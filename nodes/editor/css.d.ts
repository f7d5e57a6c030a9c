/** A style sheet, imported as its text: the build bundles .css files with esbuild's text loader. */
declare module '*.css' {
  const text: string;
  export default text;
}
