import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { Client, Provider, type OperationResult } from "urql";
import { fromValue } from "wonka";
import { ExportDataSection } from "./ExportData";

function clientAnswering(answer: Partial<OperationResult>) {
  const executeMutation = jest.fn(() => fromValue(answer as OperationResult));
  const client = { executeMutation } as unknown as Client;
  return { client, executeMutation };
}

it("asks for the export and offers its signed link to download", async () => {
  const url = "/exports/abc123?exp=1893456000&sig=signed";
  const { client, executeMutation } = clientAnswering({
    data: { exportMyData: { url, expiresAt: "2030-01-01T00:00:00Z" } },
  });
  render(
    <Provider value={client}>
      <ExportDataSection />
    </Provider>,
  );
  expect(screen.queryByRole("link", { name: "Download your data" })).toBeNull();
  await userEvent.click(screen.getByRole("button", { name: "Export my data" }));
  const link = await screen.findByRole("link", { name: "Download your data" });
  expect(link).toHaveAttribute("href", url);
  expect(link).toHaveAttribute("download", "haunted-export.json");
  expect(executeMutation).toHaveBeenCalledTimes(1);
});

it("shows the server's refusal (a rate limit) and no link", async () => {
  const { CombinedError } = await import("urql");
  const { client } = clientAnswering({
    error: new CombinedError({
      graphQLErrors: [{ message: "too many data exports; retry in 60 s", extensions: { code: "RATE_LIMITED" } }],
    }),
  });
  render(
    <Provider value={client}>
      <ExportDataSection />
    </Provider>,
  );
  await userEvent.click(screen.getByRole("button", { name: "Export my data" }));
  expect(await screen.findByText("too many data exports; retry in 60 s")).toBeInTheDocument();
  expect(screen.queryByRole("link", { name: "Download your data" })).toBeNull();
});
