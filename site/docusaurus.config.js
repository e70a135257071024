// The Haunted docs site. docs/ (at the repository root) is the one source of the
// guides; generated/ is written by `haunted docs site` from the code (make docs-build)
// and never committed. No external service is called: search is built locally.
import { themes as prismThemes } from 'prism-react-renderer';

/** @type {import('@docusaurus/types').Config} */
const config = {
  title: 'Haunted',
  tagline: 'An event-driven SaaS backend skeleton',
  url: 'http://127.0.0.1:3001',
  baseUrl: '/',
  onBrokenLinks: 'throw',
  onBrokenAnchors: 'throw',
  onDuplicateRoutes: 'throw',
  trailingSlash: false,
  // Rspack and SWC instead of webpack and Babel: the build `make test` runs is a few
  // times faster.
  future: { v4: true, faster: true },
  markdown: {
    // docs/*.md are plain Markdown (read on GitHub too): CommonMark, not MDX.
    format: 'detect',
    mermaid: true,
    hooks: { onBrokenMarkdownLinks: 'throw', onBrokenMarkdownImages: 'throw' },
  },
  staticDirectories: ['static', 'generated/static'],
  presets: [
    [
      'classic',
      /** @type {import('@docusaurus/preset-classic').Options} */
      ({
        docs: {
          path: '../docs',
          routeBasePath: 'docs',
          // The public contract's copy, kept byte-equal to /work/shared/contract for
          // tests/test_contract.py: the generated reference renders what it says.
          exclude: ['contract/**'],
        },
        pages: { path: 'generated/pages' },
        blog: false,
        theme: { customCss: './custom.css' },
      }),
    ],
  ],
  plugins: [
    [
      '@docusaurus/plugin-content-docs',
      {
        id: 'reference',
        path: 'generated/reference',
        routeBasePath: 'reference',
      },
    ],
  ],
  themes: [
    '@docusaurus/theme-mermaid',
    [
      '@easyops-cn/docusaurus-search-local',
      {
        hashed: true,
        indexBlog: false,
        indexPages: true,
        docsRouteBasePath: ['docs', 'reference'],
        docsDir: ['../docs', 'generated/reference'],
        docsPluginIdForPreferredVersion: 'default',
        highlightSearchTermsOnTargetPage: true,
      },
    ],
  ],
  themeConfig:
    /** @type {import('@docusaurus/preset-classic').ThemeConfig} */
    ({
      navbar: {
        title: 'Haunted',
        items: [
          { type: 'docSidebar', sidebarId: 'defaultSidebar', position: 'left', label: 'Guides' },
          {
            type: 'docSidebar',
            sidebarId: 'defaultSidebar',
            docsPluginId: 'reference',
            position: 'left',
            label: 'Reference',
          },
          { href: 'pathname:///asyncapi.json', label: 'AsyncAPI', position: 'left' },
        ],
      },
      footer: {
        style: 'dark',
        links: [
          {
            title: 'Reference',
            items: [
              { label: 'Configuration', to: '/reference/configuration' },
              { label: 'Command line', to: '/reference/commands' },
              { label: 'GraphQL API', to: '/reference/graphql/queries' },
              { label: 'Event catalog', to: '/reference/events' },
              { label: 'AsyncAPI document', href: 'pathname:///asyncapi.json' },
            ],
          },
        ],
        copyright: 'Generated from the Haunted repository: docs/ and the code.',
      },
      prism: {
        theme: prismThemes.github,
        darkTheme: prismThemes.dracula,
        additionalLanguages: ['bash', 'python', 'json', 'graphql'],
      },
    }),
};

export default config;
