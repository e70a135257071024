import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { CombinedError } from "urql";
import { DeleteAccountSection } from "./DeleteAccount";

const mockErase = jest.fn();
jest.mock("urql", () => ({ ...jest.requireActual("urql"), useMutation: () => [{}, mockErase] }));

beforeAll(() => {
  // jsdom has no <dialog> methods: open and close it as a browser would.
  HTMLDialogElement.prototype.showModal = function showModal(this: HTMLDialogElement) {
    this.open = true;
  };
  HTMLDialogElement.prototype.close = function close(this: HTMLDialogElement) {
    this.open = false;
  };
});

beforeEach(() => mockErase.mockReset());

it("asks to confirm with the password, then deletes and logs out", async () => {
  mockErase.mockResolvedValue({ data: { deleteAccount: true } });
  const onDeleted = jest.fn();
  render(<DeleteAccountSection onDeleted={onDeleted} />);

  await userEvent.click(screen.getByRole("button", { name: "Delete account" }));
  expect(screen.getByRole("dialog", { name: "Delete your account?" })).toBeInTheDocument();
  // Nothing is sent without the password.
  await userEvent.click(screen.getByRole("button", { name: "Delete my account" }));
  expect(mockErase).not.toHaveBeenCalled();
  expect(onDeleted).not.toHaveBeenCalled();

  await userEvent.type(screen.getByLabelText("Password"), "the password");
  await userEvent.click(screen.getByRole("button", { name: "Delete my account" }));
  expect(mockErase).toHaveBeenCalledWith({ password: "the password" });
  expect(onDeleted).toHaveBeenCalledTimes(1);
});

it("shows a refused password next to the field and stays signed in", async () => {
  mockErase.mockResolvedValue({
    error: new CombinedError({
      graphQLErrors: [
        {
          message: "the password is wrong: nothing was deleted",
          extensions: { code: "FORBIDDEN", field: "password" },
        },
      ],
    }),
  });
  const onDeleted = jest.fn();
  render(<DeleteAccountSection onDeleted={onDeleted} />);

  await userEvent.click(screen.getByRole("button", { name: "Delete account" }));
  await userEvent.type(screen.getByLabelText("Password"), "not it");
  await userEvent.click(screen.getByRole("button", { name: "Delete my account" }));

  expect(screen.getByLabelText("Password")).toHaveAccessibleDescription("the password is wrong: nothing was deleted");
  expect(onDeleted).not.toHaveBeenCalled();
});
