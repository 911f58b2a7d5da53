// The activity, registered under its exported name, `hello`.
export async function hello(name: string): Promise<string> {
  return `Hello, ${name}!`;
}
