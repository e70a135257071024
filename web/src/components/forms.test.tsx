import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { useState } from "react";
import { useForm } from "react-hook-form";
import { applyServerErrors } from "./forms";
import { ErrorAlert, TextField } from "./ui";
import type { ServerError } from "@/lib/errors";

function Form({ answer }: { answer: ServerError[] }) {
  const { register, handleSubmit, setError, formState } = useForm({ defaultValues: { email: "", teamName: "" } });
  const [rest, setRest] = useState<ServerError[]>([]);
  return (
    <form onSubmit={handleSubmit(() => setRest(applyServerErrors(answer, ["email", "teamName"], setError)))}>
      <ErrorAlert errors={rest} />
      <TextField label="Email" error={formState.errors.email?.message} {...register("email")} />
      <TextField label="Team name" error={formState.errors.teamName?.message} {...register("teamName")} />
      <button type="submit">Send</button>
    </form>
  );
}

it("shows a server error naming a field next to that field, the others in an alert", async () => {
  render(
    <Form
      answer={[
        { message: "an account with this email exists", code: "CONFLICT", field: "email" },
        { message: "too many attempts; retry in 10 s", code: "RATE_LIMITED" },
      ]}
    />,
  );
  await userEvent.click(screen.getByRole("button", { name: "Send" }));
  const email = screen.getByRole("textbox", { name: "Email" });
  expect(email).toHaveAttribute("aria-invalid", "true");
  expect(email).toHaveAccessibleDescription("an account with this email exists");
  expect(screen.getByRole("textbox", { name: "Team name" })).not.toHaveAttribute("aria-invalid");
  const alerts = screen.getAllByRole("alert").map((alert) => alert.textContent);
  expect(alerts).toContain("too many attempts; retry in 10 s");
});
