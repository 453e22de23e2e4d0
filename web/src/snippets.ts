// Ready-to-paste examples: only the base URL and the key differ from OpenAI's own.

export function baseUrl(): string {
  return `${window.location.origin}/v1`;
}

export function pythonSnippet(key: string, model: string): string {
  return `from openai import OpenAI

client = OpenAI(base_url="${baseUrl()}", api_key="${key}")
reply = client.chat.completions.create(
    model="${model}",
    messages=[{"role": "user", "content": "Hello!"}],
)
print(reply.choices[0].message.content)`;
}

export function nodeSnippet(key: string, model: string): string {
  return `import OpenAI from 'openai';

const client = new OpenAI({ baseURL: '${baseUrl()}', apiKey: '${key}' });
const reply = await client.chat.completions.create({
  model: '${model}',
  messages: [{ role: 'user', content: 'Hello!' }],
});
console.log(reply.choices[0].message.content);`;
}

export function curlSnippet(key: string, model: string): string {
  return `curl ${baseUrl()}/chat/completions \\
  -H "Authorization: Bearer ${key}" \\
  -H "Content-Type: application/json" \\
  -d '{"model": "${model}", "messages": [{"role": "user", "content": "Hello!"}]}'`;
}
