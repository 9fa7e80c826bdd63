# Globus GRAM5 LRM module "cloud": jobmanager-cloud.
#
# Submits GRAM jobs to the site's HTCondor pool as the stock condor LRM
# does, marked for cloudburst: +WantCloud = True and a requirement that
# only cloud nodes (CloudNode = True) run them. Its subclasses cloudorlocal
# (jobmanager-cloudorlocal: either) and localonly (jobmanager-localonly:
# never on a cloud node) are the other two queues. Written for cloudburst
# from the GRAM5 LRM interface (Globus::GRAM::JobManager: submit, poll,
# cancel, the job description accessors, Globus::GRAM::Error and
# Globus::GRAM::JobState).
#
# Install as .../Globus/GRAM/JobManager/cloud.pm, with
# /etc/globus/globus-cloud.conf (see globus-cloud.conf) and a
# jobmanager-cloud service entry (see jobmanager-cloud).

use strict;
use warnings;

use Globus::GRAM::Error;
use Globus::GRAM::JobState;
use Globus::GRAM::JobManager;

package Globus::GRAM::JobManager::cloud;

our @ISA = ('Globus::GRAM::JobManager');

my %config = (
    condor_submit => '/usr/bin/condor_submit',
    condor_rm     => '/usr/bin/condor_rm',
    condor_q      => '/usr/bin/condor_q',
    condor_config => '',
    # Added to every job's requirements (a ClassAd expression).
    requirements  => '(TARGET.CloudNode =?= True)',
);

# /etc/globus/globus-cloud.conf, or $GLOBUS_CLOUD_CONF: name="value" lines.
sub read_config {
    my $file = $ENV{GLOBUS_CLOUD_CONF} || '/etc/globus/globus-cloud.conf';
    open(my $fh, '<', $file) or return;
    while (my $line = <$fh>) {
        next if $line =~ /^\s*(#|$)/;
        if ($line =~ /^\s*(\w+)\s*=\s*"?(.*?)"?\s*$/) {
            $config{$1} = $2;
        }
    }
    close($fh);
}

read_config();

# Which of the three queues this module is: "cloud" here; the
# cloudorlocal and localonly modules override it.
sub mode { return 'cloud'; }
sub default_queue { return 'cloud'; }

sub new {
    my $proto = shift;
    my $class = ref($proto) || $proto;
    my $self = $class->SUPER::new(@_);
    bless $self, $class;
    return $self;
}

# A value for the submit description's new-syntax "arguments" and
# "environment": single quotes doubled, the whole in double quotes.
sub quote_arg {
    my $v = shift;
    $v =~ s/'/''/g;
    $v =~ s/"/""/g;
    return ($v =~ /[\s']/ || $v eq '') ? "'$v'" : $v;
}

sub submit_description {
    my $self = shift;
    my $desc = $self->{JobDescription};
    my @lines;

    my $jobtype = $desc->jobtype() || 'single';
    if ($jobtype ne 'single' && $jobtype ne 'multiple') {
        return Globus::GRAM::Error::JOBTYPE_NOT_SUPPORTED();
    }
    my $executable = $desc->executable();
    return Globus::GRAM::Error::RSL_EXECUTABLE() unless defined $executable && $executable ne '';
    my $dir = $desc->directory();
    return Globus::GRAM::Error::RSL_DIRECTORY() unless defined $dir && $dir ne '';

    push @lines, 'universe = vanilla';
    push @lines, "executable = $executable";
    my @args = $desc->arguments();
    if (@args) {
        push @lines, 'arguments = "' . join(' ', map { quote_arg($_) } @args) . '"';
    }
    my @env = $desc->environment();
    if (@env) {
        push @lines, 'environment = "' . join(' ', map { $_->[0] . '=' . quote_arg($_->[1]) } @env) . '"';
    }
    push @lines, "initialdir = $dir";
    push @lines, 'input = ' . ($desc->stdin() || '/dev/null');
    push @lines, 'output = ' . ($desc->stdout() || '/dev/null');
    push @lines, 'error = ' . ($desc->stderr() || '/dev/null');
    push @lines, 'should_transfer_files = YES';
    push @lines, 'when_to_transfer_output = ON_EXIT';
    push @lines, 'transfer_executable = ' . ($desc->file_stage_in() ? 'False' : 'True');

    my $cpus = $desc->count() || 1;
    push @lines, "request_cpus = $cpus" if $jobtype eq 'single';
    my $memory = $desc->max_memory();
    push @lines, "request_memory = $memory" if $memory;
    my $wall = $desc->max_wall_time();
    if ($wall) {
        # GRAM's max_wall_time is in minutes.
        my $secs = $wall * 60;
        push @lines, "+MaxWallTimeMins = $wall";
        push @lines, "periodic_remove = (JobStatus == 2) && ((time() - EnteredCurrentStatus) > $secs)";
    }
    my $project = $desc->project();
    push @lines, "+ProjectName = \"$project\"" if $project && $project =~ /^[\w.\-]+$/;

    # Where it may run (the three queues, as the HTCondor-CE routes):
    # cloud only (marked for cloudburst, on cloud nodes), cloud or local
    # (marked, Requirements open to both: the schedd side adds no CloudNode
    # clause to a CloudburstAnywhere job), or never on the cloud.
    my $mode = $self->mode();
    if ($mode eq 'cloud') {
        push @lines, '+WantCloud = True';
        push @lines, "requirements = $config{requirements}";
    } elsif ($mode eq 'cloud_or_local') {
        push @lines, '+WantCloud = True';
        push @lines, '+CloudburstAnywhere = True';
    } else {
        push @lines, 'requirements = (TARGET.CloudNode =!= true)';
    }
    my $queue = $desc->queue() || $self->default_queue();
    push @lines, "+GlobusQueue = \"$queue\"" if $queue =~ /^[\w.\-]+$/;
    push @lines, 'log = ' . $self->job_dir() . '/condor.log';
    my $count = ($jobtype eq 'multiple') ? $cpus : 1;
    push @lines, "queue $count";
    return join("\n", @lines) . "\n";
}

sub job_dir {
    my $self = shift;
    return $self->{JobDir} || $self->{JobDescription}->directory();
}

sub submit {
    my $self = shift;
    my $submit = $self->submit_description();
    return $submit if ref($submit);    # an error object

    my $file = $self->job_dir() . '/cloud-job.submit';
    open(my $fh, '>', $file) or return Globus::GRAM::Error::TEMP_SCRIPT_FILE_FAILED();
    print $fh $submit;
    close($fh);

    local $ENV{CONDOR_CONFIG} = $config{condor_config} if $config{condor_config};
    my $out = `$config{condor_submit} '$file' 2>&1`;
    if ($? != 0 || $out !~ /submitted to cluster (\d+)/) {
        $self->log("condor_submit failed: $out");
        return Globus::GRAM::Error::JOB_EXECUTION_FAILED();
    }
    my $cluster = $1;
    return {
        JOB_ID    => "$cluster.0",
        JOB_STATE => Globus::GRAM::JobState::PENDING(),
    };
}

sub poll {
    my $self = shift;
    my $id = $self->{JobDescription}->jobid();
    return Globus::GRAM::Error::JOB_QUERY_DENIAL() unless $id && $id =~ /^[\d.]+$/;
    local $ENV{CONDOR_CONFIG} = $config{condor_config} if $config{condor_config};
    my $status = `$config{condor_q} $id -af JobStatus 2>/dev/null`;
    chomp $status;
    my %state = (
        1 => Globus::GRAM::JobState::PENDING(),
        2 => Globus::GRAM::JobState::ACTIVE(),
        3 => Globus::GRAM::JobState::FAILED(),
        4 => Globus::GRAM::JobState::DONE(),
        5 => Globus::GRAM::JobState::SUSPENDED(),
    );
    # Gone from the queue: finished (the job log has the details).
    my $s = ($status eq '') ? Globus::GRAM::JobState::DONE() : ($state{$status} || Globus::GRAM::JobState::PENDING());
    return { JOB_STATE => $s };
}

sub cancel {
    my $self = shift;
    my $id = $self->{JobDescription}->jobid();
    return Globus::GRAM::Error::JOB_CANCEL_FAILED() unless $id && $id =~ /^[\d.]+$/;
    local $ENV{CONDOR_CONFIG} = $config{condor_config} if $config{condor_config};
    system($config{condor_rm}, $id);
    return Globus::GRAM::Error::JOB_CANCEL_FAILED() if $? != 0;
    return { JOB_STATE => Globus::GRAM::JobState::FAILED() };
}

1;
